import { runService } from "#common/service.ts";
import { authService } from "./service.ts";

await runService(authService);
