// Runs the ObjectStore contract suite against the embedded folder store.
import { join } from "node:path";
import { objectStoreContract } from "../contracts/object-store.case.js";
import { LocalObjectStore } from "./object-store.js";

objectStoreContract("LocalObjectStore", (dir) => new LocalObjectStore(join(dir, "lake")));
