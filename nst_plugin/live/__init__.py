"""``nst webcam``: a camera stylized live.

The modules, in the order a frame meets them:

* :mod:`.capture`: the camera read on its own thread; the newest frame wins (older ones are dropped, never
  queued); a video file standing in for a camera is paced at its own frame rate.
* :mod:`.stages`: what each style shows while it learns: its palette at once, the keyframe network while it
  trains (training runs on a background thread, between which frames keep coming), then the trained network.
* :mod:`.filter`: a temporal filter that uses only frames already seen (the previous output moved along the
  optical flow where the offline engine's trust checks accept it).
* :mod:`.strokes`: the keyframe's brush strokes carried along the same flows where they can be followed (the
  offline engine's texture transport, one frame at a time).
* :mod:`.cache`: each style's trained network kept in the user's cache folder.
* :mod:`.display`: the picture drawn with its overlay (stage, fps, lag), in a window or off-screen.
* :mod:`.record`: ``--record``: what was shown, at the times it was shown.
* :mod:`.session`: the loop that ties them together; :mod:`.sequence`: any other sequence engine
  (``--engine lbfgs``, a plugin's) frame by frame from the same capture.

Measurements and tuning: docs/benchmarks-live.md. Nothing heavy is imported here.
"""
