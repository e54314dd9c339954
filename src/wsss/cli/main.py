"""The ``wsss`` command: thin typer commands over the Python API.

Errors about inputs (:class:`~wsss.errors.WsssError`) print one line naming the file and the
problem and exit with status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys

import typer

from wsss.cli import (
    ablate,
    affinity,
    calibrate,
    cam,
    convert,
    evaluate,
    propagate,
    refine,
    run,
    seeds,
    seg,
    synth,
    viz,
)
from wsss.cli.common import state
from wsss.engine import shutdown_distributed
from wsss.errors import WsssError

app = typer.Typer(
    name="wsss",
    help="Weakly-supervised semantic segmentation: from image-level labels to pixel labels.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _global(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or tables."),
) -> None:
    state.debug = debug
    state.quiet = quiet


app.command("synth")(synth.synth)
app.command("eval")(evaluate.evaluate)
app.command("viz")(viz.viz)
app.command("run")(run.run)
app.command("train-cam")(cam.train_cam)
app.command("cam")(cam.cam)
app.command("calibrate-cams")(calibrate.calibrate_cams)
app.command("seeds")(seeds.seeds)
app.command("train-affinity")(affinity.train_affinity)
app.command("propagate")(propagate.propagate)
app.command("refine")(refine.refine)
app.command("train-seg")(seg.train_seg)
app.command("predict")(seg.predict)
app.add_typer(convert.app, name="convert")
app.add_typer(ablate.app, name="ablate")


def main() -> None:
    """Entry point of the console script."""
    try:
        app()
    except WsssError as err:
        if "--debug" in sys.argv:
            raise
        print(f"wsss: error: {err}", file=sys.stderr)
        sys.exit(2)
    finally:
        shutdown_distributed()


if __name__ == "__main__":
    main()
