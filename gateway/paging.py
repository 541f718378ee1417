"""The query parameters of every list: ?cursor=<opaque>&limit=<1..100, default 20>."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from gateway.schemas.common import Text
from zap.common.v1 import common_pb2


async def page_request(
    cursor: Annotated[Text | None, Query(max_length=1024, description="Opaque cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size")] = 20,
) -> common_pb2.PageRequest:
    return common_pb2.PageRequest(cursor=cursor or "", limit=limit)


PageParams = Annotated[common_pb2.PageRequest, Depends(page_request)]


def next_cursor(page: common_pb2.PageInfo) -> str | None:
    return page.next_cursor or None
