/* parlor: the command-line entry point; dispatches to the subcommands. */
#include <stdio.h>
#include <string.h>

#include "echo/echo.h"
#include "serve/serve.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: parlor <command> [options]\n\n"
                 "commands:\n"
                 "  serve    the chat server (port 5000, SQLite in ./data)\n"
                 "  token    print a token signed with the server's secret (development)\n"
                 "  migrate  copy a SQLite store into PostgreSQL\n"
                 "  echo     Engine.IO / Socket.IO echo server (protocol testbed)\n"
                 "\n'parlor <command> --help' lists a command's options; 'parlor --version' "
                 "prints the version.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("parlor %s\n", PARLOR_VERSION);
        return 0;
    }
    if (!strcmp(argv[1], "serve")) return serve_main(argc - 2, argv + 2);
    if (!strcmp(argv[1], "token")) return token_main(argc - 2, argv + 2);
    if (!strcmp(argv[1], "echo")) return echo_main(argc - 2, argv + 2);
    if (!strcmp(argv[1], "migrate")) return migrate_main(argc - 2, argv + 2);
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        /* The chat server's option table, the one most people look for. */
        printf("\n");
        char help[] = "--help";
        char *args[] = {help, NULL};
        return serve_main(1, args);
    }
    fprintf(stderr, "parlor: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
