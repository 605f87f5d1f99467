/* parlor: command-line entry point (placeholder until the server lands). */
#include <stdio.h>
int main(void)
{
    puts("parlor");
    return 0;
}
