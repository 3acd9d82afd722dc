"""Lecture tours: a TOML file of view states -> one self-contained HTML player (or slide frames)."""

from .build import build_stop, build_tour_html, update_table
from .slides import frame_svg, write_frames
from .spec import Stop, Tour, TourError, load_tour, parse_tour

__all__ = ['Stop', 'Tour', 'TourError', 'build_stop', 'build_tour_html', 'frame_svg', 'load_tour', 'parse_tour',
           'update_table', 'write_frames']
