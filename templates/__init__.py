"""The jinja2 templates, shipped inside the wheel as `mirror.templates`."""
