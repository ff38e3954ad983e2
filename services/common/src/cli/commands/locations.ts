import type { Command } from "commander";
import type { CliContext } from "../context.ts";

// placeholder until the command is written
export function registerLocations(_program: Command, _ctx: CliContext): void {}
