"""Browser tests: JupyterLab with the allframe-lab extension in headless chromium."""
