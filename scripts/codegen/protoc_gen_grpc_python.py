"""protoc plugin that runs grpcio-tools' built-in grpc_python generator, offline.

buf speaks the plugin protocol (CodeGeneratorRequest on stdin, CodeGeneratorResponse on
stdout); grpcio-tools only exposes its generator through its embedded protoc. This bridge
hands the request's descriptors to that protoc and returns what it wrote.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from grpc_tools import protoc


def main() -> int:
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    response = plugin_pb2.CodeGeneratorResponse(
        supported_features=plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    )
    with tempfile.TemporaryDirectory() as tmp:
        descriptor_set = Path(tmp, "descriptors.pb")
        descriptor_set.write_bytes(
            descriptor_pb2.FileDescriptorSet(file=request.proto_file).SerializeToString()
        )
        out = Path(tmp, "out")
        out.mkdir()
        status = protoc.main(
            [
                "grpc_tools.protoc",
                f"--descriptor_set_in={descriptor_set}",
                f"--grpc_python_out={out}",
                *request.file_to_generate,
            ]
        )
        if status != 0:
            response.error = f"grpc_tools.protoc exited with {status}"
        else:
            for path in sorted(out.rglob("*.py")):
                generated = response.file.add()
                generated.name = str(path.relative_to(out))
                generated.content = path.read_text()
    sys.stdout.buffer.write(response.SerializeToString())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
