"""The HTTP connection settings of one manager, for transfers made outside the REST client.

``Connection`` is what a raw ``requests`` transfer (the streamed snapshot download and
upload, ``snapshot/transfer.py``) needs to talk to a manager exactly as the
``CloudifyClient`` does: its session, its versioned base URL (so relative paths use the
API prefix discovery chose), its headers (``Tenant`` and ``Authorization`` or
``Authentication-Token``) and its TLS verification (the profile's certificate, or False
only with ``CLOUDIFY_SSL_TRUST_ALL``).  ``Manager.connection()`` builds one.  The headers
carry credentials: they are left out of ``repr``.
"""
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping, Union

import requests
from cloudify_rest_client import CloudifyClient


@dataclass(frozen=True)
class Connection:
    """Session, versioned base URL, headers and TLS verification of one manager."""

    session: requests.Session = field(repr=False)
    base_url: str
    headers: Mapping[str, str] = field(repr=False)
    verify: Union[bool, str] = True

    @classmethod
    def of_client(cls, client: CloudifyClient) -> 'Connection':
        """The settings a ``CloudifyClient`` sends its own requests with."""
        http = client._client
        return cls(session=http._session, base_url=http.url,
                   headers=MappingProxyType(dict(http.headers)),
                   verify=http.get_request_verify())

    def url(self, path: str) -> str:
        """``path`` under the versioned base URL when it is relative (``/snapshots/...``)."""
        return self.base_url + path if path.startswith('/') else path
