"""Views: the HTML kit (html.py) and the matplotlib figures (figures.py) that every page and stage
shares, plus the SAE pages. Imports only `mechinterp.formats`."""
