"""Entry point of the editor: `latentloom` with no arguments, or `latentloom edit [FILE]`."""
import sys

ORGANIZATION, APPLICATION = "LatentLoom", "Latent Loom"


def make_app(argv=None):
    from latentloom.app.ui import qtcompat  # noqa: F401  (first: binding work-arounds)
    from PySide6.QtWidgets import QApplication
    app = QApplication.instance() or QApplication(list(argv or sys.argv[:1]))
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    return app


def run_editor(file=None, models=None, out=None, device=None, settings=None):
    """Open the editor window and run the event loop. Returns the exit code."""
    app = make_app()
    from latentloom.app.ui.settings import Settings
    from latentloom.app.ui.window import MainWindow
    settings = settings or Settings()
    settings.apply_cli(models, out, device)
    window = MainWindow(settings, file=file)
    window.show()
    window.runner.warm_up()  # the engine process loads torch while the user looks around
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(run_editor(sys.argv[1] if len(sys.argv) > 1 else None))
