"""Frames from anywhere: frame folders, video files (frame-exact PyAV reading, with each video's
frame index kept on disk), LMDB stores, single JPEG / PNG images, and live streams (files, folders,
cameras) read in order; and the check of one clip before a run reads it.

Everything here knows files and pixels, nothing about models, clips or training: it may import
only :mod:`ops.errors`, the crash-safe writes of :mod:`ops.safe_files` and its own modules.
"""
