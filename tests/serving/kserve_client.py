"""Runs KServe's own REST client (`kserve.InferenceRESTClient`) against a server, in the venv that holds
the `kserve` package (its pins conflict with the project's: see kserve_python in test_protocols.py).

Usage: python kserve_client.py URL KEY < calls.json, where calls are [{"call": ..., ...}]; prints one
JSON result per call: the answer, or {"error": message, "status": code} for an HTTP error.
"""

import asyncio
import base64
import json
import sys

import httpx
import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig


async def one(url: str, headers: dict, call: dict) -> object:
    protocol = call.get("protocol", "v1")
    async with InferenceRESTClient(RESTConfig(protocol=protocol, retries=0, timeout=30)) as client:
        kind = call["call"]
        if kind == "model_ready":
            return await client.is_model_ready(url, call["model"], headers=headers)
        if kind == "server_live":
            return await client.is_server_live(url, headers=headers)
        if kind == "server_ready":
            return await client.is_server_ready(url, headers=headers)
        if kind == "predict":  # V1: a dict body
            return await client.infer(url, call["body"], model_name=call["model"], headers=headers)
        if kind == "infer":  # V2: an InferRequest of InferInputs, answered as an InferResponse
            inputs = []
            for spec in call["inputs"]:
                tensor = InferInput(spec["name"], spec["shape"], spec["datatype"])
                if spec["datatype"] == "BYTES":
                    values = [base64.b64decode(v) if spec.get("b64") else v.encode() for v in spec["data"]]
                    tensor.set_data_from_numpy(
                        np.array(values, dtype=np.object_).reshape(spec["shape"]), binary_data=spec.get("binary", True)
                    )
                else:
                    tensor.set_data_from_numpy(
                        np.array(spec["data"], dtype=spec["numpy"]).reshape(spec["shape"]),
                        binary_data=spec.get("binary", True),
                    )
                inputs.append(tensor)
            request = InferRequest(model_name=call["model"], infer_inputs=inputs, request_id=call.get("id"))
            response = await client.infer(url, request, model_name=call["model"], headers=headers)
            outputs = {}
            for output in response.outputs:
                array = output.as_numpy()
                outputs[output.name] = {
                    "datatype": output.datatype,
                    "shape": list(output.shape),
                    "data": [v.decode() if isinstance(v, bytes) else v for v in array.ravel().tolist()],
                }
            return {
                "model_name": response.model_name,
                "model_version": response.model_version,
                "id": response.id,
                "outputs": outputs,
            }
        raise ValueError(f"unknown call {kind}")


async def main() -> None:
    url, key = sys.argv[1], sys.argv[2]
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    results = []
    for call in json.load(sys.stdin):
        try:
            results.append(await one(url, headers, call))
        except httpx.HTTPStatusError as exc:
            results.append({"error": str(exc), "status": exc.response.status_code})
    print(json.dumps(results))


asyncio.run(main())
