/**
 * The transcript of an agent run (Budget.ts entries) as LM Studio takes it: chat messages for chat completions, input
 * items for the Responses API.
 */
import type { ChatMessage } from "../domain/Messages.js"
import type { Entry } from "./Budget.js"

/** An entry as a chat message. */
export const chatMessageOf = (e: Entry): ChatMessage => {
  switch (e._tag) {
    case "Task":
    case "Note":
      return { role: "user", content: e.text }
    case "Assistant":
      return {
        role: "assistant",
        content: e.text,
        ...(e.calls.length > 0
          ? { tool_calls: e.calls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments })) }
          : {})
      }
    case "Result":
      return { role: "tool", content: e.text, tool_call_id: e.call.id }
  }
}

/** An entry as Responses input items (calls written as text go back as user messages, since no native call exists). */
export const responseItemsOf = (e: Entry): ReadonlyArray<unknown> => {
  switch (e._tag) {
    case "Task":
    case "Note":
      return [{ role: "user", content: e.text }]
    case "Assistant":
      return [
        ...(e.text !== "" ? [{ role: "assistant", content: e.text }] : []),
        ...e.calls.filter((c) => !c.id.startsWith("text_call_")).map((c) => ({
          type: "function_call",
          call_id: c.id,
          name: c.name,
          arguments: c.arguments
        }))
      ]
    case "Result":
      return [
        e.call.id.startsWith("text_call_")
          ? { role: "user", content: `Result of ${e.call.name}: ${e.text}` }
          : { type: "function_call_output", call_id: e.call.id, output: e.text }
      ]
  }
}
