import { z } from "zod";
import { buddyDefinition } from "#common/config/buddies-schema.ts";
import { BUDDY_ACTIONS } from "../runner/actions.ts";

/** Input of the admin API (docs/buddies.md "Admin API and page"). */

export const jidParams = z.object({ jid: z.string().min(3).max(200) });

export const actionParams = jidParams.extend({ action: z.enum(BUDDY_ACTIONS) });

export const definitionBody = buddyDefinition;

export const hookParams = z.object({
  domain: z.string().regex(/^[a-z0-9.-]{1,253}$/, "a domain"),
  username: z.string().min(1).max(64),
  hook: z.string().regex(/^[a-z][\w-]{0,63}$/, "a hook name"),
});
