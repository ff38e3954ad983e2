import { runService } from "#common/service.ts";
import { buddiesService } from "./service.ts";

await runService(buddiesService);
