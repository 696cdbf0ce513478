"""Turning sources (paths, ``FILE:KEY``, ``-``, inline literals) into arrays, and writing results."""
