"""The napari plugin (npe2 manifest ``napari.yaml``): a reader for TIFF/NPY images and model files, a
writer for image layers and the Denoise dock widget (``_reader``, ``_writer``, ``_widget``; napari loads
each on first use). Imported by napari only; needs the ``napari`` extra."""
