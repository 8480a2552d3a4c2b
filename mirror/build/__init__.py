"""Build: the articles in the store in; a signed static edition folder out (pages, feeds,
pictures, the manifest and its signature).

`builder` runs it; `render` makes the pages, `epub` the day's EPUB 3 book, `slugs` their
paths, `pictures` the images, `templating` finds the templates.
"""
