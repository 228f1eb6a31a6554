"""One look for the whole window: Qt's Fusion style, a dark (or light) palette, a small stylesheet.

The canvas colours are set by the graph view; these match them."""
from latentloom.app.ui import qtcompat  # noqa: F401  (first: binding work-arounds)
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

from latentloom.app.ui import icons

THEMES = ("dark", "light")
DARK = {
    QPalette.Window: "#25262b", QPalette.WindowText: "#dcdee3", QPalette.Base: "#1c1d21",
    QPalette.AlternateBase: "#2a2b31", QPalette.ToolTipBase: "#2f3036", QPalette.ToolTipText: "#e6e7ea",
    QPalette.PlaceholderText: "#7c7f88", QPalette.Text: "#dcdee3", QPalette.Button: "#2f3036",
    QPalette.ButtonText: "#dcdee3", QPalette.BrightText: "#ff6b6b", QPalette.Link: "#6aa9ff",
    QPalette.Highlight: "#3d6fd0", QPalette.HighlightedText: "#ffffff", QPalette.Light: "#3a3b42",
    QPalette.Midlight: "#33343a", QPalette.Mid: "#2a2b30", QPalette.Dark: "#18191c", QPalette.Shadow: "#000000",
}
DISABLED = {QPalette.WindowText: "#6d7078", QPalette.Text: "#6d7078", QPalette.ButtonText: "#6d7078"}
STYLESHEET = {
    "dark": """
QToolTip { color: #e6e7ea; background: #2f3036; border: 1px solid #4a4c55; padding: 3px; }
QDockWidget::title { background: #2d2e34; padding: 4px 6px; }
QMenu::separator { height: 1px; background: #3b3c43; margin: 4px 8px; }
QToolBar { border: none; spacing: 4px; padding: 2px; }
QStatusBar { border-top: 1px solid #33343a; }
QLineEdit, QPlainTextEdit, QTextEdit, QSpinBox, QDoubleSpinBox, QComboBox {
    border: 1px solid #3c3e46; border-radius: 3px; padding: 2px 4px; }
QLineEdit:focus, QPlainTextEdit:focus, QSpinBox:focus, QDoubleSpinBox:focus, QComboBox:focus {
    border-color: #3d6fd0; }
""",
    "light": """
QDockWidget::title { background: #e4e5e9; padding: 4px 6px; }
QToolBar { border: none; spacing: 4px; padding: 2px; }
""",
}


def palette(theme):
    if theme == "light":
        return QApplication.style().standardPalette()
    pal = QPalette()
    for role, color in DARK.items():
        pal.setColor(QPalette.All, role, QColor(color))
    for role, color in DISABLED.items():
        pal.setColor(QPalette.Disabled, role, QColor(color))
    return pal


def apply_theme(theme="dark", app=None):
    """Fusion + the theme's palette + stylesheet on the whole application."""
    app = app or QApplication.instance()
    theme = theme if theme in THEMES else "dark"
    if app.property("latentloom_style") != "fusion":
        style = QStyleFactory.create("Fusion")
        app.setStyle(style)
        app.setProperty("latentloom_style", style.name().lower())
    app.setPalette(palette(theme))
    app.setStyleSheet(STYLESHEET[theme])
    app.setProperty("latentloom_theme", theme)
    icons.current["theme"] = theme
    return theme
