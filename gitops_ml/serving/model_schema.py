"""Request schemas learnt from the model itself rather than from a sample: an MLflow signature
(columns with types and optional ones, tensor specs, params) and its input example, an ONNX graph's
inputs, the feature names of a scikit-learn, XGBoost or LightGBM model; and a sample checked against
the result. Reads the model; never writes.

Input names follow MLflow's scoring protocol where it has one: a column signature is the input
`dataframe_records` (records), one unnamed tensor is `inputs`, params are `params`; an ONNX graph's
inputs keep their names; a scikit-learn model's rows are `data`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from gitops_ml.errors import LoadError, Location
from gitops_ml.serving.inference import ANNOTATION, SCHEMA_DIALECT, infer_schema
from gitops_ml.serving.tensors import TensorInput

DATAFRAME_INPUT = "dataframe_records"
TENSOR_INPUT = "inputs"
PARAMS_INPUT = "params"
ROWS_INPUT = "data"

# MLflow's column and param types -> (NumPy dtype of the column, JSON Schema type of a cell)
MLFLOW_TYPES: Mapping[str, tuple[str, str]] = {
    "boolean": ("bool", "boolean"), "integer": ("int32", "integer"), "long": ("int64", "integer"),
    "float": ("float32", "number"), "double": ("float64", "number"), "string": ("object", "string"),
    "binary": ("object", "string"), "datetime": ("datetime64[ns]", "string"),
}


@dataclass(frozen=True)
class ModelSchema:
    """A request schema learnt from a model, the sample it came with (None when none), and notes."""

    schema: dict[str, Any]
    sample: dict[str, Any] | None
    source: str  # what it was learnt from, for messages
    notes: tuple[str, ...] = ()


def request_schema(properties: Mapping[str, dict[str, Any]], required: Sequence[str]) -> dict[str, Any]:
    return {"$schema": SCHEMA_DIALECT, "type": "object", "additionalProperties": False, "required": list(required), "properties": dict(properties)}


def tensor_schema(tensor: TensorInput) -> dict[str, Any]:
    """An annotated ndarray input (a JSON array of strings for a string tensor)."""
    shape = list(tensor.shape) or [None]
    if tensor.dtype in ("str", "object"):
        leaf: dict[str, Any] = {"type": "string"}
    else:
        import numpy as np  # noqa: PLC0415

        kind = np.dtype(tensor.dtype).kind
        leaf = {"type": {"b": "boolean", "i": "integer", "u": "integer", "f": "number"}.get(kind, "number")}
        if kind == "u":
            leaf["minimum"] = 0
    schema = leaf
    for size in reversed(shape[1:]):
        schema = {"type": "array", "items": schema, **({"minItems": size, "maxItems": size} if size is not None else {})}
    schema = {"type": "array", "minItems": 1, "items": schema}
    if shape[0] is not None:
        schema["maxItems"] = shape[0]
        schema["minItems"] = shape[0]
    if tensor.dtype in ("str", "object"):
        schema[ANNOTATION] = {"kind": "json"}
    else:
        schema[ANNOTATION] = {"kind": "ndarray", "dtype": tensor.dtype, "shape": shape}
    return schema


def columns_schema(columns: Sequence[tuple[str, str, str, bool]]) -> dict[str, Any]:
    """An annotated DataFrame input in records orientation from (name, dtype, JSON type, required)."""
    cells = {}
    for name, dtype, json_type, required in columns:
        cell: dict[str, Any] = {"type": json_type if required else [json_type, "null"]}
        if dtype.startswith("datetime"):
            cell["format"] = "date-time"
        cells[name] = cell
    optional = [name for name, _, _, required in columns if not required]
    annotation: dict[str, Any] = {"kind": "dataframe", "orient": "records", "columns": {name: dtype for name, dtype, _, _ in columns}}
    if optional:
        annotation["optional"] = optional
    return {
        "type": "array",
        "minItems": 1,
        "items": {"type": "object", "additionalProperties": False, "required": [c[0] for c in columns if c[3]], "properties": cells},
        ANNOTATION: annotation,
    }


# --- MLflow ---------------------------------------------------------------------------------------


def schema_from_mlmodel(info: Any, where: str) -> ModelSchema:
    """The request schema of an MLflow model (an mlmodel.MLModel) from its signature, and the sample
    from its input example; LoadError naming `where` when it has no signature."""
    if not info.signed:
        raise LoadError(f"the MLflow model at {where} has no signature, so its input cannot be checked or documented",
                        hint="log the model with signature=infer_signature(X, y) or input_example=X, or write schema.json yourself")
    notes: list[str] = []
    properties: dict[str, dict[str, Any]] = {}
    required: list[str] = []
    specs = info.inputs or []
    if info.columns:
        named = all(spec.get("name") for spec in specs)
        if named:
            columns = []
            for spec in specs:
                dtype, json_type = _mlflow_type(spec, where)
                columns.append((str(spec["name"]), dtype, json_type, spec.get("required", True) is not False))
            properties[DATAFRAME_INPUT] = columns_schema(columns)
        else:  # unnamed columns of one type: rows of values
            dtype, _ = _mlflow_type(specs[0], where)
            properties[TENSOR_INPUT] = tensor_schema(TensorInput(TENSOR_INPUT, dtype if dtype != "object" else "str", (None, len(specs))))
        required.append(next(iter(properties)))
    else:
        tensors = [_mlflow_tensor(spec, where) for spec in specs]
        if len(tensors) == 1 and not specs[0].get("name"):
            tensors = [TensorInput(TENSOR_INPUT, tensors[0].dtype, tensors[0].shape)]
        for tensor in tensors:
            properties[tensor.name] = tensor_schema(tensor)
            required.append(tensor.name)
    if info.params:
        properties[PARAMS_INPUT] = _params_schema(info.params, where)
    schema = request_schema(properties, required)
    sample = _mlflow_sample(info, properties, notes)
    return ModelSchema(schema, sample, f"the MLflow signature of {where}", tuple(notes))


def _mlflow_type(spec: Mapping[str, Any], where: str) -> tuple[str, str]:
    kind = spec.get("type")
    if isinstance(kind, str) and kind in MLFLOW_TYPES:
        return MLFLOW_TYPES[kind]
    if kind in ("array", "object", "map", "any"):
        return "object", "array" if kind == "array" else "object"
    raise LoadError(f"the MLflow signature of {where} has a column of type {kind!r}, which gitops-ml cannot decode",
                    hint="write schema.json yourself (gitops-ml schema generate --sample)")


def _mlflow_tensor(spec: Mapping[str, Any], where: str) -> TensorInput:
    tensor = spec.get("tensor-spec") or {}
    dtype = str(tensor.get("dtype") or "float64")
    if dtype in ("object", "str", "bytes"):
        dtype = "str"
    shape = tuple(None if not isinstance(d, int) or d < 0 else d for d in (tensor.get("shape") or [-1]))
    return TensorInput(str(spec.get("name") or TENSOR_INPUT), dtype, shape)


def _params_schema(params: Sequence[Mapping[str, Any]], where: str) -> dict[str, Any]:
    props = {}
    for param in params:
        _, json_type = _mlflow_type(param, where)
        schema: dict[str, Any] = {"type": json_type}
        if param.get("shape"):
            schema = {"type": "array", "items": schema}
        if "default" in param and param["default"] is not None:
            schema["default"] = param["default"]
        props[str(param["name"])] = schema
    return {"type": "object", "additionalProperties": False, "properties": props, ANNOTATION: {"kind": "json"}}


def _mlflow_sample(info: Any, properties: Mapping[str, Any], notes: list[str]) -> dict[str, Any] | None:
    example = info.example
    if example is None:
        notes.append("the model has no input example: write sample.json (it is the OpenAPI example and every image's smoke test)")
        return None
    params = example.pop(PARAMS_INPUT, None) if isinstance(example, dict) and PARAMS_INPUT in example and TENSOR_INPUT in example else None
    if DATAFRAME_INPUT in properties:
        if isinstance(example, dict) and {"columns", "data"} <= set(example):
            records = [dict(zip(example["columns"], row)) for row in example["data"]]
        elif isinstance(example, list) and all(isinstance(r, dict) for r in example):
            records = example
        elif isinstance(example, dict) and all(isinstance(v, list) for v in example.values()):
            keys = list(example)
            records = [dict(zip(keys, row)) for row in zip(*example.values())]
        else:
            notes.append("the model's input example is not a table: write sample.json")
            return None
        sample: dict[str, Any] = {DATAFRAME_INPUT: records}
    elif isinstance(example, dict) and TENSOR_INPUT in example:
        value = example[TENSOR_INPUT]
        sample = dict(value) if isinstance(value, dict) else {next(iter(properties)): value}
    elif isinstance(example, dict):
        sample = dict(example)
    else:
        sample = {next(iter(properties)): example}
    if params is not None:
        sample[PARAMS_INPUT] = params
    return sample


# --- files: MLflow directories and zips, ONNX graphs, pickled estimators, XGBoost and LightGBM ----


def infer_model_schema(path: Path, builtin: str, *, sample: Mapping[str, Any] | None = None) -> ModelSchema:
    """The request schema of the model at `path` served by `builtin`; a given sample is checked
    against it (LoadError naming the field that does not fit)."""
    if builtin == "mlflow":
        from gitops_ml.serving.builtins.mlmodel import read_mlmodel  # noqa: PLC0415

        learnt = schema_from_mlmodel(read_mlmodel(path), str(path))
    elif builtin == "onnx":
        from gitops_ml.serving.builtins.onnx import describe  # noqa: PLC0415

        tensors = describe(path)
        learnt = ModelSchema(request_schema({t.name: tensor_schema(t) for t in tensors}, [t.name for t in tensors]), None, f"the ONNX graph {path}")
    elif builtin in ("sklearn", "xgboost", "lightgbm"):
        learnt = _from_features(path, builtin, sample)
    else:
        raise LoadError(f"cannot learn a schema for builtin {builtin!r}", hint="pass --sample to infer the schema from a sample")
    chosen = sample if sample is not None else learnt.sample
    if chosen is not None:
        check_sample(learnt.schema, chosen)
    return learnt if sample is None else ModelSchema(learnt.schema, dict(sample), learnt.source, learnt.notes)


def _feature_names(path: Path, builtin: str) -> tuple[list[str], int]:
    """(feature names, number of features; 0 when unknown) the model was trained with."""
    if builtin == "sklearn":
        from gitops_ml.serving.builtins.sklearn import feature_names, load_estimator  # noqa: PLC0415

        model = load_estimator(path)
        return feature_names(model), int(getattr(model, "n_features_in_", 0) or 0)
    if builtin == "xgboost":
        import xgboost as xgb  # noqa: PLC0415

        booster = xgb.Booster()
        booster.load_model(str(path))
        return list(booster.feature_names or []), int(booster.num_features())
    import lightgbm as lgb  # noqa: PLC0415

    model = lgb.Booster(model_file=str(path))
    names = list(model.feature_name())
    # LightGBM names unnamed features Column_0, Column_1...: those are positions, not names
    if names == [f"Column_{i}" for i in range(len(names))]:
        names = []
    return names, int(model.num_feature())


def _from_features(path: Path, builtin: str, sample: Mapping[str, Any] | None) -> ModelSchema:
    names, width = _feature_names(path, builtin)
    source = f"the {builtin} model {path}"
    if sample is not None:
        # the model knows names and width, the sample knows the types: infer from the sample, check against the model
        schema = infer_schema(sample)
        _check_features(schema, names, width)
        return ModelSchema(schema, dict(sample), f"{source} and the sample")
    notes = ("the model records no column types: every column is float64; pass --sample to infer types from a sample",)
    if names:
        schema = request_schema({ROWS_INPUT: columns_schema([(n, "float64", "number", True) for n in names])}, [ROWS_INPUT])
    elif width:
        schema = request_schema({ROWS_INPUT: tensor_schema(TensorInput(ROWS_INPUT, "float64", (None, width)))}, [ROWS_INPUT])
        notes = ("the model records no feature names, only their number: rows of float64",)
    else:
        raise LoadError(f"{source} records neither feature names nor their number", location=Location(str(path)),
                        hint="pass --sample to infer the schema from a sample")
    return ModelSchema(schema, None, source, notes)


def _check_features(schema: Mapping[str, Any], names: Sequence[str], width: int) -> None:
    for name, prop in (schema.get("properties") or {}).items():
        annotation = prop.get(ANNOTATION) or {}
        if annotation.get("kind") == "dataframe" and names:
            columns = list(annotation.get("columns") or {})
            missing = [n for n in names if n not in columns]
            extra = [c for c in columns if c not in names]
            if missing or extra:
                what = f"lacks column {missing[0]!r}" if missing else f"has column {extra[0]!r}, which the model was not trained on"
                raise LoadError(f"the sample's {name} {what}", hint="the model's columns: " + ", ".join(names))
        elif annotation.get("kind") == "ndarray" and width:
            shape = annotation.get("shape") or []
            if len(shape) == 2 and shape[1] != width:
                raise LoadError(f"the sample's {name} has rows of {shape[1]} values; the model takes {width}")


def check_sample(schema: Mapping[str, Any], sample: Any) -> None:
    """LoadError naming the field when the sample does not fit the schema (as the server decodes it)."""
    from gitops_ml.serving.decoding import InputError, RequestDecoder  # noqa: PLC0415

    try:
        RequestDecoder.from_schema(schema).decode(sample)
    except InputError as exc:
        raise LoadError(f"the sample does not fit the model's schema: {exc.message}", hint=f"expected {exc.expected}" if exc.expected else "") from exc
    import jsonschema  # noqa: PLC0415 - the keywords the server does not check (formats, defaults' types)

    errors = sorted(jsonschema.Draft202012Validator(dict(schema)).iter_errors(sample), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        where = ".".join(map(str, errors[0].absolute_path)) or "sample"
        raise LoadError(f"the sample does not fit the model's schema: {where}: {errors[0].message[:200]}")
