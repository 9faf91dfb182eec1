"""Deterministic small stand-ins for PASCAL VOC2012 + SBD, COCO 2014 and FSS-1000 in their raw download formats.

scenes draws the class looks and objects, backgrounds the photo crops, formats encodes the files,
layout holds what the generators share; pascal, coco and fss write one benchmark each. pretraining
(imported on its own: it needs torch) trains the stand-in for ImageNet on looks no benchmark uses.
"""

from hmfs.synthetic.backgrounds import (BACKGROUNDS, CROP_FRACTION, PHOTO_NAMES, backdrop_photos, load_photos,
                                        photo_background)
from hmfs.synthetic.coco import (COCO_CATEGORIES, COCO_CLASSES_PER_IMAGE, MAX_CLASSES_PER_IMAGE, assign_classes,
                                 generate_coco)
from hmfs.synthetic.formats import JPEG_QUALITY, MAT_HEADER, VOC_CLASSES, voc_boundary_band, voc_palette
from hmfs.synthetic.fss import FSS_IMAGES_PER_CLASS, FSS_SPLIT_RATIO, fss_class_names, generate_fss
from hmfs.synthetic.layout import MAX_LAYOUT_TRIES, MIN_VISIBLE_PIXELS
from hmfs.synthetic.pascal import generate_pascal
from hmfs.synthetic.scenes import (COLOURS, OBJECT_HALF_SIZE, PHOTO_SHARE, SHAPES, TEXTURES, Appearance, Instance,
                                   ObjectSpec, class_map, distractors, draw_appearances, render_scene, shape_polygons)

__all__ = [
    "BACKGROUNDS", "COCO_CATEGORIES", "COCO_CLASSES_PER_IMAGE", "COLOURS", "CROP_FRACTION", "FSS_IMAGES_PER_CLASS",
    "FSS_SPLIT_RATIO", "JPEG_QUALITY", "MAT_HEADER", "MAX_CLASSES_PER_IMAGE", "MAX_LAYOUT_TRIES", "MIN_VISIBLE_PIXELS",
    "OBJECT_HALF_SIZE", "PHOTO_NAMES", "PHOTO_SHARE", "SHAPES", "TEXTURES", "VOC_CLASSES", "Appearance", "Instance",
    "ObjectSpec", "assign_classes", "backdrop_photos", "class_map", "distractors", "draw_appearances",
    "fss_class_names", "generate_coco", "generate_fss", "generate_pascal", "load_photos", "photo_background",
    "render_scene", "shape_polygons", "voc_boundary_band", "voc_palette",
]
