"""Where a sweep writes: a local folder or an object-store URI (s3://, gs://, ...), through
pyarrow filesystems, so every node of a cluster can share one output location."""

from __future__ import annotations

import os
import uuid

import pyarrow.fs as pafs

from .errors import UserError


class Storage:
    def __init__(self, uri: str):
        self.uri = uri if "://" in uri else os.path.abspath(uri)
        try:
            self.fs, self.root = pafs.FileSystem.from_uri(self.uri)
        except (OSError, ValueError) as e:  # ArrowInvalid is a ValueError
            raise UserError(f"output {uri}: not a usable location ({e})") from None

    def path(self, name: str) -> str:
        return f"{self.root.rstrip('/')}/{name}"

    def uri_of(self, name: str) -> str:
        return f"{self.uri.rstrip('/')}/{name}"

    def exists(self, name: str) -> bool:
        return self.fs.get_file_info(self.path(name)).type != pafs.FileType.NotFound

    def write_bytes(self, name: str, data: bytes) -> None:
        """Write to a temporary name, then move: readers see the old file or the new one."""
        folder, slash, base = name.rpartition("/")
        self.fs.create_dir(self.path(folder) if folder else self.root, recursive=True)
        tmp = self.path(f"{folder}{slash}.{base}.tmp-{uuid.uuid4().hex[:8]}")
        with self.fs.open_output_stream(tmp) as f:
            f.write(data)
        self.fs.move(tmp, self.path(name))

    def read_text(self, name: str) -> str:
        with self.fs.open_input_stream(self.path(name)) as f:
            return f.read().decode()

    def probe(self) -> None:
        """Fail now, with the reason, if we cannot write here (before any trial starts)."""
        name = f".robust_ray_probe-{uuid.uuid4().hex[:8]}"
        try:
            self.fs.create_dir(self.root, recursive=True)
            with self.fs.open_output_stream(self.path(name)) as f:
                f.write(b"ok")
            self.fs.delete_file(self.path(name))
        except Exception as e:  # pyarrow raises OSError subclasses and ArrowException variously
            raise UserError(f"output {self.uri}: cannot write there ({e})") from None
