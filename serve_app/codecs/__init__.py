"""Codecs: the only code that touches wire formats.

Each turns bytes or JSON values into ``DecodedImage`` (numpy pixels, height x
width x channels) and translates its library's exceptions into ours.
"""
