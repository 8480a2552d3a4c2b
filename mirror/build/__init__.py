"""Build: the articles in the store in; a signed static edition folder out (pages, feeds,
pictures, the manifest and its signature).

`builder` runs it; `render` makes the pages, `slugs` their paths, `pictures` the images,
`templating` finds the templates.
"""
