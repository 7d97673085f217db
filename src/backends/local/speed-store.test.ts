// Runs the SpeedStore contract suite against the in-process store.
import { speedStoreContract } from "../contracts/speed-store.case.js";
import { MemorySpeedStore } from "./speed-store.js";

speedStoreContract("MemorySpeedStore", () => new MemorySpeedStore(), {
  skip: {
    restart:
      "its checkpoints live in the instance's Map and end with it; the embedded mode's durable speed checkpoint is the catalog's",
  },
});
