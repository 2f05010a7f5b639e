"""The journey context on the wire: the one codec (``codec``: ``decode`` / ``encode`` of the
``cx.*`` baggage members) and the one carrier reader (``carriers``) every entry point uses.
"""
