"""Plot data, downsampling and rendering, on a migrated SQLite database."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from sqlalchemy.orm import Session

from atalaia.adapters.db.engine import make_engine, make_session_factory
from atalaia.adapters.db.migrate import upgrade_database
from atalaia.adapters.db.repositories import JobStore, ModelStore, ReadingStore
from atalaia.core.detectors import ModelParams
from atalaia.core.jobs import JobStatus, TrainingJob
from atalaia.core.registry import ModelVersion, Stage
from atalaia.core.series import Readings
from atalaia.errors import (
    InvalidInput,
    InvalidSeriesId,
    SeriesNotFound,
    VersionNotFound,
)
from atalaia.services.plotting import (
    DEFAULT_WINDOW_S,
    PlotData,
    PlotQuery,
    build_plot_data,
    downsample_indices,
    draw_figure,
    render_png,
    render_svg,
    to_json,
)
from fixtures.factories import model_version

SERIES = "sensor_001_radial"
T0 = 1_733_011_200.0  # 2024-12-01T00:00:00Z
STEP = 600.0  # one reading every 10 minutes
N = 10 * 144  # ten days
SPIKES = (8 * 144 + 10, 9 * 144 + 50, 9 * 144 + 100)  # inside the last seven days
PARAMS = ModelParams(center=10.0, scale=1.0, threshold=3.0)  # band [7, 13]


def _series() -> Readings:
    ts = T0 + STEP * np.arange(N)
    values = 10.0 + 2.0 * np.sin(np.arange(N) / 20.0)
    values[list(SPIKES)] = [20.0, 0.0, 19.0]
    return Readings.of(ts, values)


def _version(version: int, stage: Stage, params: ModelParams = PARAMS) -> ModelVersion:
    """A version trained on the four days from T0."""
    return model_version(
        version, stage, series_id=SERIES, params=params, data_start=T0,
        data_end=T0 + 4 * 86_400.0, data_points=576,
    )  # fmt: skip


def _register(session: Session, model: ModelVersion) -> None:
    """Add `model` and the finished job it claims to come from."""
    job = TrainingJob(
        job_id=model.lineage.job_id, series_id=SERIES, status=JobStatus.SUCCEEDED,
        algorithm="zscore", hyperparameters={}, payload_key=None, window_hours=96.0,
        created_at=model.created_at, submitted_by="test",
    )  # fmt: skip
    JobStore(session).add(job)
    ModelStore(session).add(model, actor="test")


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    url = f"sqlite:///{tmp_path}/plot.db"
    upgrade_database(url)
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        ReadingStore(session).append(SERIES, _series())
        yield session
    engine.dispose()


@pytest.fixture
def with_model(session: Session) -> Session:
    _register(session, _version(1, Stage.STAGING))
    return session


def test_default_window_is_last_seven_days_of_data(with_model: Session) -> None:
    data = build_plot_data(with_model, PlotQuery(SERIES))
    last = T0 + STEP * (N - 1)
    assert data.readings.timestamps[-1] == last
    assert data.end > last
    assert data.start == pytest.approx(data.end - DEFAULT_WINDOW_S)
    assert len(data.readings) == 7 * 144


def test_default_window_starts_at_the_oldest_reading_of_a_short_series(
    session: Session,
) -> None:
    ReadingStore(session).append("short", Readings.of([T0, T0 + 60.0], [1.0, 2.0]))
    data = build_plot_data(session, PlotQuery("short"))
    assert data.start == T0
    assert len(data.readings) == 2
    assert data.model is None


def test_anomalies_are_the_injected_spikes(with_model: Session) -> None:
    data = build_plot_data(with_model, PlotQuery(SERIES, start=T0))
    assert np.flatnonzero(data.anomaly).tolist() == list(SPIKES)
    assert data.band == (7.0, 13.0)
    assert data.training_window == (T0, T0 + 4 * 86_400.0)
    assert data.scores is not None
    assert data.scores[SPIKES[0]] == pytest.approx(10.0 / 3.0)


def test_production_wins_over_a_newer_staging_version(session: Session) -> None:
    _register(session, _version(1, Stage.PRODUCTION))
    _register(session, _version(2, Stage.STAGING, ModelParams(10.0, 5.0, 3.0)))
    assert _model_version(session, PlotQuery(SERIES)) == 1
    assert _model_version(session, PlotQuery(SERIES, version=2)) == 2


def test_newest_version_without_production(session: Session) -> None:
    for version in (1, 2):
        _register(session, _version(version, Stage.STAGING))
    assert _model_version(session, PlotQuery(SERIES)) == 2


def _model_version(session: Session, query: PlotQuery) -> int | None:
    model = build_plot_data(session, query).model
    return model.version if model is not None else None


def test_without_model_nothing_is_flagged(session: Session) -> None:
    data = build_plot_data(session, PlotQuery(SERIES))
    body = to_json(data)
    assert data.model is None
    assert not data.anomaly.any()
    assert body["model"] is None
    assert body["band"] is None
    assert body["training_window"] is None
    assert body["anomalies"] == []
    assert set(body["points"]["anomaly_score"]) == {None}
    assert _title(data) == f"{SERIES} — no model"


def test_unknown_series_and_version(with_model: Session) -> None:
    with pytest.raises(SeriesNotFound):
        build_plot_data(with_model, PlotQuery("nobody"))
    with pytest.raises(VersionNotFound):
        build_plot_data(with_model, PlotQuery(SERIES, version=9))
    with pytest.raises(InvalidSeriesId):
        build_plot_data(with_model, PlotQuery("bad id!"))


@pytest.mark.parametrize(
    ("start", "end"),
    [(T0 + 3600.0, T0 + 3600.0), (T0 + 7200.0, T0), (T0 + 30 * 86_400.0, None)],
)
def test_end_must_be_after_start(
    with_model: Session, start: float, end: float | None
) -> None:
    with pytest.raises(InvalidInput) as caught:
        build_plot_data(with_model, PlotQuery(SERIES, start=start, end=end))
    assert caught.value.rule == "time_range"


@pytest.mark.parametrize("start", [None, T0, T0 + 86_400.0])
def test_windows_over_the_point_limit_are_refused(
    with_model: Session, start: float | None
) -> None:
    query = PlotQuery(SERIES, start=start, end=T0 + STEP * N if start else None)
    with pytest.raises(InvalidInput) as caught:
        build_plot_data(with_model, query, max_points=100)
    assert caught.value.rule == "max_window_points"


def test_window_at_the_point_limit_is_served(with_model: Session) -> None:
    query = PlotQuery(SERIES, start=T0, end=T0 + 100 * STEP)
    assert len(build_plot_data(with_model, query, max_points=100).readings) == 100


def test_json_lists_every_point_and_anomaly(with_model: Session) -> None:
    body = to_json(build_plot_data(with_model, PlotQuery(SERIES, start=T0)))
    json.dumps(body, allow_nan=False)
    ts = _series().timestamps
    assert body["model"] == {
        "version": 1, "stage": "staging", "algorithm": "zscore",
        "center": 10.0, "scale": 1.0, "threshold": 3.0, "period_s": None,
        "phases": 1,
    }  # fmt: skip
    assert body["band"] == {"lower": 7.0, "upper": 13.0}
    assert set(body["points"]["lower"]) == {7.0}
    assert set(body["points"]["upper"]) == {13.0}
    assert [a["timestamp"] for a in body["anomalies"]] == [ts[i] for i in SPIKES]
    assert [a["value"] for a in body["anomalies"]] == [20.0, 0.0, 19.0]
    assert [a["direction"] for a in body["anomalies"]] == ["above", "below", "above"]
    assert {a["reason"] for a in body["anomalies"]} == {"outside_band"}
    assert body["summary"] == {"points": N, "anomalies": 3}
    points = body["points"]
    assert {len(column) for column in points.values()} == {N}
    assert points["timestamps"][0] == T0


def test_downsampling_keeps_extremes_ends_and_kept_points() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=100_003)
    keep = np.zeros(values.size, dtype=np.bool_)
    keep[[5, 50_000, 77_777]] = True
    drawn = downsample_indices(values, keep, max_points=1_000)
    assert drawn.size <= 1_000 + 3
    assert np.all(np.diff(drawn) > 0)
    assert set(np.flatnonzero(keep)) <= set(drawn.tolist())
    assert {0, values.size - 1, int(values.argmin()), int(values.argmax())} <= set(
        drawn.tolist()
    )


def test_short_series_are_drawn_in_full() -> None:
    values = np.arange(10.0)
    drawn = downsample_indices(values, np.zeros(10, np.bool_), max_points=10)
    assert drawn.tolist() == list(range(10))


def test_png_decodes(with_model: Session) -> None:
    png = render_png(build_plot_data(with_model, PlotQuery(SERIES)))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = matplotlib.image.imread(io.BytesIO(png), format="png")
    assert image.shape[:2] == (500, 1200)


def test_svg_is_xml(with_model: Session) -> None:
    svg = render_svg(build_plot_data(with_model, PlotQuery(SERIES)))
    assert ET.fromstring(svg).tag == "{http://www.w3.org/2000/svg}svg"


def test_figure_title_and_legend(with_model: Session) -> None:
    data = build_plot_data(with_model, PlotQuery(SERIES, start=T0))
    ax = draw_figure(data).axes[0]
    assert _title(data) == f"{SERIES} — v1 (staging, zscore)"
    labels = ax.get_legend_handles_labels()[1]
    assert "training window" in labels
    assert "anomalies (3)" in labels
    assert ax.get_xlabel() == "time (UTC)"


def test_an_empty_window_still_renders(with_model: Session) -> None:
    query = PlotQuery(SERIES, start=T0 - 7200.0, end=T0 - 3600.0)
    data = build_plot_data(with_model, query)
    assert len(data.readings) == 0
    assert render_png(data).startswith(b"\x89PNG")
    assert to_json(data)["summary"] == {"points": 0, "anomalies": 0}


def test_concurrent_renders_match_serial_ones(with_model: Session) -> None:
    plots = [
        build_plot_data(with_model, PlotQuery(SERIES)),
        build_plot_data(with_model, PlotQuery(SERIES, start=T0)),
    ]
    serial = [render_png(p) for p in plots]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(render_png, plots * 2))
    assert parallel == serial * 2


def _title(data: PlotData) -> str:
    title: str = draw_figure(data).axes[0].get_title(loc="left")
    return title
