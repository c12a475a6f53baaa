CREATE TABLE module_dependencies (
    module TEXT NOT NULL COLLATE NOCASE,
    extension TEXT NOT NULL COLLATE NOCASE,
    version INTEGER NOT NULL,
    uses TEXT NOT NULL,
    PRIMARY KEY (module, extension)
);
