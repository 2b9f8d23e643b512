"""The monthly loyalty report (PRODUCT.md item 8): collect, render as HTML, print as PDF.

:mod:`.data` gathers every number from the analytics functions the dashboard
uses; :mod:`.monthly` renders one self-contained HTML file (inline CSS and
SVG charts, both languages) and prints it to PDF with headless Chromium.
"""
