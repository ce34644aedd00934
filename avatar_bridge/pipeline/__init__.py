"""Pipelines: the only place with threads, clocks and pacing.

``export`` runs a video through tracking and FACS as fast as it can and writes files;
``live`` runs a camera or video through every stage to the sinks, paced in real time.
"""
