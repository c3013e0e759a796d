"""Blender 4.2 LTS / 4.5 LTS / 5.0: every difference of the Python API the add-on meets, in one place.
No bpy here: these take Blender's objects (duck-typed) so that the logic is tested with stand-ins too.

=====================  ==================================  ===========================================
what                   4.2 - 4.5                           5.0
=====================  ==================================  ===========================================
a sequencer's strips   ``sequence_editor.sequences``       ``sequence_editor.strips``
every strip (metas)    ``sequence_editor.sequences_all``   ``sequence_editor.strips_all``
an action's F-curves   ``action.fcurves`` (4.2, 4.3; a     only in the layered action: ``action.layers
                       legacy view of slot 1 in 4.4-4.5)   [i].strips[j].channelbag(slot).fcurves`` for
                                                           the ``action_slot`` of the animation data
=====================  ==================================  ===========================================

``strips.new_image(..., fit_method=...)`` takes the same values in all three.
"""

from __future__ import annotations


def strips_of(sequence_editor):
    """Top-level strips collection: ``strips`` (Blender 5.0) or ``sequences`` (4.2-4.5)."""
    return sequence_editor.strips if hasattr(sequence_editor, "strips") else sequence_editor.sequences


def all_strips(sequence_editor):
    """Every strip, inside metastrips too: ``strips_all`` (5.0) or ``sequences_all`` (4.2-4.5)."""
    return sequence_editor.strips_all if hasattr(sequence_editor, "strips_all") else sequence_editor.sequences_all


def new_image(sequence_editor, name: str, filepath: str, channel: int, frame_start: int, fit_method: str = "ORIGINAL"):
    """A new image strip. ``fit_method`` (``FIT``, ``FILL``, ``STRETCH``, ``ORIGINAL``): how its picture is
    scaled to the render size when it is made; the add-on sets the scale itself, so ``ORIGINAL``."""
    return strips_of(sequence_editor).new_image(name=name, filepath=filepath, channel=channel, frame_start=frame_start,
                                                fit_method=fit_method)


def fcurve(id_data, data_path: str, index: int = 0):
    """The F-curve animating ``data_path`` (array element ``index``) of an ID (``scene``,
    ``"nst.strength"``) in its action, or None: the action's own ``fcurves`` (4.2-4.3) or the channel bag of
    the ID's action slot in the action's layers (4.4 and later; the only way in 5.0)."""
    animation = getattr(id_data, "animation_data", None)
    action = getattr(animation, "action", None) if animation is not None else None
    if action is None:
        return None
    slot = getattr(animation, "action_slot", None)
    if slot is not None and hasattr(action, "layers"):
        for layer in action.layers:
            for strip in layer.strips:
                bag = strip.channelbag(slot)
                found = bag.fcurves.find(data_path, index=index) if bag is not None else None
                if found is not None:
                    return found
        return None
    fcurves = getattr(action, "fcurves", None)
    return fcurves.find(data_path, index=index) if fcurves is not None else None
