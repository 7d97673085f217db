// Runs the Catalog contract suite against the embedded SQLite catalog.
import { join } from "node:path";
import { catalogContract } from "../contracts/catalog.case.js";
import { SqliteCatalog } from "./catalog-store.js";

catalogContract("SqliteCatalog", (dir) => new SqliteCatalog(join(dir, "catalog.db")));
