#include "agents.h"

#include <string.h>

#include "cleanup.h"

static const char *const no_args[] = {NULL};
static const char *const no_hosts[] = {NULL};

static const char *const claude_args[] = {"--dangerously-skip-permissions", NULL};
static const char *const claude_hosts[] = {"api.anthropic.com", "statsig.anthropic.com", "sentry.io", NULL};
static const char *const codex_args[] = {"--dangerously-bypass-approvals-and-sandbox", NULL};
static const char *const codex_hosts[] = {"api.openai.com", "chatgpt.com", "auth.openai.com", NULL};
static const char *const gemini_args[] = {"--yolo", NULL};
static const char *const gemini_hosts[] = {"generativelanguage.googleapis.com", "oauth2.googleapis.com",
					   "cloudcode-pa.googleapis.com", NULL};
static const char *const copilot_args[] = {"--allow-all-tools", NULL};
static const char *const copilot_hosts[] = {"api.githubcopilot.com", "api.github.com", "github.com", NULL};
static const char *const opencode_hosts[] = {"opencode.ai", "models.dev", "api.anthropic.com", "api.openai.com", NULL};

/* The agents run without their own permission prompts: the sandbox is the boundary, which is
 * the point of sbx. */
static const struct sbx_agent_profile profiles[] = {
	{"shell", "an interactive bash shell", "bash", no_args, NULL, no_hosts, 1},
	{"claude", "Claude Code (Anthropic)", "claude", claude_args, "npm install -g @anthropic-ai/claude-code",
	 claude_hosts, 0},
	{"codex", "Codex CLI (OpenAI)", "codex", codex_args, "npm install -g @openai/codex", codex_hosts, 0},
	{"gemini", "Gemini CLI (Google)", "gemini", gemini_args, "npm install -g @google/gemini-cli", gemini_hosts, 0},
	{"copilot", "GitHub Copilot CLI", "copilot", copilot_args, "npm install -g @github/copilot", copilot_hosts, 0},
	{"opencode", "opencode", "opencode", no_args, "npm install -g opencode-ai", opencode_hosts, 0},
};

const struct sbx_agent_profile *sbx_agent_find(const char *name)
{
	for (size_t i = 0; i < SBX_ARRAY_LEN(profiles); i++)
		if (name && strcmp(profiles[i].name, name) == 0)
			return &profiles[i];
	return NULL;
}

const struct sbx_agent_profile *sbx_agent_all(size_t *n)
{
	*n = SBX_ARRAY_LEN(profiles);
	return profiles;
}

const char *sbx_agent_names(void)
{
	return "shell, claude, codex, gemini, copilot, opencode";
}
