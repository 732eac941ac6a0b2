"""The Discuz! X forum: settings and records (``models``), the pure page parser (``parse``), the HTTP client
(``client``), and publishing results back into a thread (``publish``). The coordinator's watcher lives in
``aicut.coordinator.watcher``; the worker's resolve and publish stages call into this package."""
