"""Caps on what a message from the network may ask for, shared by every wire protocol.

Nothing from the network is trusted: a header that declares a huge frame, or a CBOR message
nested without end, must be refused before anything is allocated for it, so that one bad or
hostile message cannot exhaust memory or the stack. The decoders (:mod:`~temstream.stream.native`,
:mod:`~temstream.stream.dectris`) and the runner's warm-up on a series announcement check
against these caps (``docs/wire-format.md``, "Safety limits").
"""

#: largest frame side accepted from the wire (pixels)
MAX_SIDE = 16384
#: largest frame accepted from the wire (pixels); bounds the memory one message can cost
MAX_PIXELS = 8192 * 8192
#: nesting depth of CBOR containers accepted (real messages use 4)
MAX_DEPTH = 16
