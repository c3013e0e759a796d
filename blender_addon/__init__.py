"""Neural Style Transfer for Blender's Video Sequence Editor (a Blender 4.2+ extension).

Select a movie or image-sequence strip, pick a painting, get a stylized image-sequence strip back. The
engine (nst-plugin, TensorFlow) runs in its own Python process, in an environment that *Set Up Engine*
makes for it; this package only needs bpy. The modules ``plan``, ``engines``, ``engine_process``, ``engine_setup``,
``runner`` (the background processes and the running jobs), ``progress``, ``strips`` and ``compat`` (the
differences between Blender versions) do not import bpy and are tested without Blender; ``result_strip``, ``jobs`` and
``preview`` work on Blender data; ``props``, ``preferences``, ``operators`` and ``panels`` hold the
Blender types.
"""

_MODULES = ("props", "preferences", "operators", "preview_live", "panels")


def _modules():
    import importlib

    return [importlib.import_module(f"{__name__}.{name}") for name in _MODULES]


def register():
    for module in _modules():
        module.register()


def unregister():
    for module in reversed(_modules()):
        module.unregister()
