// Runs the JobQueue contract suite against the in-process queue.
import { jobQueueContract } from "../contracts/job-queue.case.js";
import { LocalJobQueue } from "./job-queue.js";

jobQueueContract("LocalJobQueue", () => new LocalJobQueue(), {
  skip: {
    restart:
      "jobs live in one instance's memory: no second instance or process shares them, and none outlives the process",
  },
});
