"""Request and response schemas of the scoring API (v1) and the Open Inference Protocol (v2)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints

# Fixed here, not in settings: the OpenAPI schema states them and screening systems code against it.
MAX_ITEMS = 256
MAX_DESCRIPTION = 2000

# A character that is white space in no regex dialect: JSON Schema's (ECMA-262) \s leaves out NEL and
# the information separators that Unicode and Python count, and counts the BOM that Unicode does not.
NOT_BLANK = r"[^\s\x1c-\x1f\x85\ufeff\u180e]"
ItemId = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[\w.:/#-]+$")]


class Item(BaseModel):
    """One declaration line: its goods description and, when declared, its HS code."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: ItemId | None = Field(default=None, description="echoed in the result; generated when absent")
    description: str = Field(
        min_length=1,
        max_length=MAX_DESCRIPTION,
        pattern=NOT_BLANK,
        description="the goods description as declared (at least one character that is not white space)",
    )
    hs_code: str | None = Field(
        default=None, max_length=16, pattern=r"^[0-9][0-9 .\-]{3,14}[0-9]$", description="declared HS code"
    )


class ScoreRequest(BaseModel):
    """Up to 256 items scored in one call; ``explain`` adds the reasons."""

    model_config = ConfigDict(extra="forbid", strict=True)

    items: list[Item] = Field(min_length=1, max_length=MAX_ITEMS)
    explain: bool = False


class ModelInfo(BaseModel):
    """The model that scored the request."""

    name: str
    version: str
    alias: str
    sha256: str


class Limits(BaseModel):
    """What the quantities stated in the description say against the provision's numeric limits."""

    status: Literal["met", "failed", "unknown"] = Field(
        description="met: some way under the provision has its stated limits met; failed: a stated quantity rules "
        "out every way; unknown: nothing stated to compare"
    )
    limits: list[str] = Field(description="the limits concerned, as Annex I writes them ('volume > 0,1 m3')")
    note: str


class Provision(BaseModel):
    """An Annex I provision the description resembles, quoted word for word."""

    code: str
    regime: str
    text: str
    similarity: float
    limits: Limits | None = None


class Hit(BaseModel):
    """A watch-list substance named in the description (offsets into the description as sent)."""

    substance: str
    cas: str | None
    provision: str
    reference: str
    cwc_schedule: str = Field(description="the CWC schedule entry of the substance, '' when not scheduled")
    kind: str
    by: str
    start: int
    end: int


class Token(BaseModel):
    """A word of the description and its weight in the score (positive pushes towards a flag)."""

    text: str
    start: int
    end: int
    weight: float


class HsCheck(BaseModel):
    """Whether the declared HS code fits the description (null: no basis to say)."""

    declared: str | None
    consistent: bool | None
    note: str


class Score(BaseModel):
    """The score of one item and, when asked, why."""

    id: str
    score: float = Field(ge=0, le=1)
    flagged: bool
    threshold: float
    category: str
    categories: dict[str, float] | None = None
    provisions: list[Provision] | None = None
    hits: list[Hit] | None = None
    tokens: list[Token] | None = None
    hs_check: HsCheck | None = None
    notes: list[str] | None = None
    # Drift signals for the audit record; never part of the response.
    _oov: float | None = PrivateAttr(default=None)
    _novelty: float | None = PrivateAttr(default=None)


class ScoreResponse(BaseModel):
    """Results in the order of the request's items."""

    request_id: str
    model: ModelInfo
    results: list[Score]


class Problem(BaseModel):
    """An error: what went wrong and, for invalid input, which fields."""

    detail: str | list[dict[str, Any]]
    request_id: str | None = None
    error: str | None = Field(default=None, description="the same message, for Open Inference Protocol clients")


# ----- Open Inference Protocol (KServe v2) ------------------------------------------------------


class TensorSpec(BaseModel):
    """A tensor's name, type and shape in model metadata."""

    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    """``GET /v2/models/{name}``."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]


class InferInput(BaseModel):
    """A BYTES tensor of descriptions."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(description="'description'")
    shape: list[int] = Field(min_length=1, max_length=2)
    datatype: Literal["BYTES"]
    data: list[Annotated[str, StringConstraints(min_length=1, max_length=MAX_DESCRIPTION)]] = Field(
        min_length=1, max_length=MAX_ITEMS
    )
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    """``POST /v2/models/{name}/infer``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: str | None = Field(default=None, max_length=100)
    inputs: list[InferInput] = Field(min_length=1, max_length=1)
    parameters: dict[str, Any] | None = None


class InferOutput(BaseModel):
    """An output tensor."""

    name: str
    shape: list[int]
    datatype: str
    data: list[Any]


class InferResponse(BaseModel):
    """The v2 inference response."""

    model_name: str
    model_version: str
    id: str
    outputs: list[InferOutput]
