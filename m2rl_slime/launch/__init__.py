"""Launch the study's runs on slime: recipes, the launcher CLI, multi-node orchestration, checkpoint conversion.

This subpackage implements no slime hook; it renders recipes (``recipes/*.yaml``) into slime's
``ray job submit ... -- python3 train.py <args>`` command, passing our hooks' dotted paths as slime flags and
our plugin settings through the generated ``--custom-config-path`` YAML. It imports neither torch nor slime.
"""

from .cli import main
from .model import Recipe, Service
from .recipe import load_recipe
from .render import Rendered, render

__all__ = ["Recipe", "Rendered", "Service", "load_recipe", "main", "render"]
