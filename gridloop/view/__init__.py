"""The live view: a loopback web page of a running (or finished) loop, fed by server-sent events.

The engine hands each step to a :class:`~gridloop.view.observer.StepObserver` without waiting; a
:class:`~gridloop.view.hub.FrameHub` thread turns the latest step into at most a few frames a second, and a
small Starlette app (:mod:`gridloop.view.app`) pushes them to every open page.
"""
