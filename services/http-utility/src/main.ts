import { runService } from "#common/service.ts";
import { httpUtilityService } from "./service.ts";

await runService(httpUtilityService);
