"""What OONI's measurements say of each listed mirror, per country.

Takes the listed mirrors' public URLs and `[reach]`; gives one `Verdict` per mirror and
country (`ok`, `anomalies`, `confirmed blocked`, `no data`, or `error` when the API gave
no usable answer), cached for `window_h` in a file beside the store. `model` is pure
(parsing OONI's pages, classifying); `ooni` is the only module that talks to the API;
`run` ties them to the cache and to the "mark blocked" action; `ooni_run` writes an
OONI Run v2 descriptor. Only listed mirrors ever go to OONI.
"""
