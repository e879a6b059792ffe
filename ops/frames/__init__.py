"""Frames from anywhere: frame folders, video files (frame-exact PyAV reading), LMDB stores, single
JPEG / PNG images, and live streams (files, folders, cameras) read in order.

Everything here knows files and pixels, nothing about models, clips or training: it may import
only :mod:`ops.errors` and its own modules.
"""
