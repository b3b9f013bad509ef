#include "table.h"

#include <gtest/gtest.h>

namespace imgpull::cli {
namespace {

TEST(FormatTable, PadsEachColumnToItsWidestCellPlusThreeSpaces) {
  EXPECT_EQ(format_table({{"REPOSITORY", "TAG", "SIZE"}, {"debian", "12", "117MB"}, {"localhost:5000/a", "1", "5B"}}),
            "REPOSITORY         TAG   SIZE\n"
            "debian             12    117MB\n"
            "localhost:5000/a   1     5B\n");
}

TEST(FormatTable, LastColumnIsNotPadded) {
  EXPECT_EQ(format_table({{"A", "LONG"}, {"B", ""}}), "A   LONG\nB   \n");
}

TEST(FormatTable, RowsMayHaveFewerColumns) {
  EXPECT_EQ(format_table({{"A", "B", "C"}, {"xx"}}), "A    B   C\nxx\n");
}

TEST(FormatTable, NoRowsIsEmpty) { EXPECT_EQ(format_table({}), ""); }

TEST(FormatTable, WidthsAreBytes) {
  // "é" is two bytes: its column is one byte wider than it looks.
  EXPECT_EQ(format_table({{"é", "x"}, {"a", "y"}}), "é   x\na    y\n");
}

TEST(Ellipsis, KeepsTextThatFits) {
  EXPECT_EQ(ellipsis("", 5), "");
  EXPECT_EQ(ellipsis("abcde", 5), "abcde");
}

TEST(Ellipsis, CutsToMaxCharactersTheLastBeingTheEllipsis) {
  EXPECT_EQ(ellipsis("abcdef", 5), "abcd…");
  EXPECT_EQ(ellipsis("/bin/sh -c #(nop) ADD file:1234 in /", 10), "/bin/sh -…");
}

TEST(Ellipsis, CountsCodePointsNotBytes) {
  EXPECT_EQ(ellipsis("ééééé", 5), "ééééé");
  EXPECT_EQ(ellipsis("éééééé", 5), "éééé…");
  EXPECT_EQ(ellipsis("a€b€c€", 4), "a€b…");
}

}  // namespace
}  // namespace imgpull::cli
