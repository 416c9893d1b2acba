"""Caps on what a message from the network may ask for, shared by every wire protocol.

Nothing from the network is trusted: a header that declares a huge frame, or a CBOR message
nested without end, must be refused before anything is allocated for it, so that one bad or
hostile message cannot exhaust memory or the stack. The decoders (:mod:`~temstream.stream.native`,
:mod:`~temstream.stream.dectris`) and the runner's warm-up on a series announcement check
against these caps (``docs/wire-format.md``, "Safety limits").
"""

#: largest frame side accepted from the wire (pixels)
MAX_SIDE = 16384
#: largest frame accepted from the wire (pixels): the one budget that bounds the memory a
#: message can cost, in every decoder and in the runner's warm-up on a series announcement
MAX_PIXELS = 8192 * 8192
#: nesting depth of CBOR containers accepted (real messages use 4)
MAX_DEPTH = 16


def fits_budget(height: int, width: int) -> bool:
    """True when a ``height x width`` frame is one a message may carry (sides within
    :data:`MAX_SIDE`, pixels within :data:`MAX_PIXELS`)."""
    return 0 < height <= MAX_SIDE and 0 < width <= MAX_SIDE and height * width <= MAX_PIXELS
