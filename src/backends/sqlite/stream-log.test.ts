// Runs the Stream contract suite against the embedded SQLite log.
import { join } from "node:path";
import { streamContract } from "../contracts/stream.case.js";
import { SqliteStream } from "./stream-log.js";

streamContract("SqliteStream", (dir) => new SqliteStream(join(dir, "stream.db")));
