"""What the report shows: Tables 1-5, the claims, their intervals and the figures, from result files."""
