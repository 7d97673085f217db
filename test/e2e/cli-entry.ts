// Runs the `tributary` CLI from source for the end-to-end tests (bin/tributary.js runs the compiled dist/).
import { main } from "../../src/cli/main.js";

await main(process.argv);
