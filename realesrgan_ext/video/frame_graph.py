"""One frame through an FFmpeg filter graph (PyAV's ``av.filter.Graph``), for filters that work frame by frame.

``through_graph`` builds the buffer source from the frame itself, lets the caller add and link its
filters, and ends the stream after the one frame, so filters that hold a frame back (estdif keeps
one for the next one's timing) give it up. The input frame is not changed.
"""

from __future__ import annotations

from collections.abc import Callable

import av
from av.filter.context import FilterContext


def through_graph(frame: av.VideoFrame, build: Callable[[av.filter.Graph, FilterContext], FilterContext]
                  ) -> av.VideoFrame:
    """``frame`` after the filters ``build(graph, source)`` adds behind the buffer source ``source``,
    returning the last of them (linked here to the graph's sink)."""
    graph = av.filter.Graph()
    source = graph.add_buffer(width=frame.width, height=frame.height, format=frame.format.name,
                              time_base=frame.time_base or 1)
    build(graph, source).link_to(graph.add("buffersink"))
    graph.configure()
    graph.push(frame)
    graph.push(None)  # the end of the stream: a filter holding the frame back lets it go
    return graph.pull()
