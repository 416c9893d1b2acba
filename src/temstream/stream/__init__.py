"""Wire protocols (native, DECTRIS Stream V1/V2), frame sources, publishers and file readers."""
